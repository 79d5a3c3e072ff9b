build-wt/obj/service/store_redis.o: service/store_redis.c service/store.h \
 service/cw.h service/detect.h service/event.h service/netranges.h \
 service/redis_conn.h
service/store.h:
service/cw.h:
service/detect.h:
service/event.h:
service/netranges.h:
service/redis_conn.h:
