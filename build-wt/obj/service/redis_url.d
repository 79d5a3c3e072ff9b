build-wt/obj/service/redis_url.o: service/redis_url.c \
 service/redis_conn.h service/cw.h
service/redis_conn.h:
service/cw.h:
