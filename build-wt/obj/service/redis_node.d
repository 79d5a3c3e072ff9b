build-wt/obj/service/redis_node.o: service/redis_node.c \
 service/redis_node.h service/redis_conn.h service/cw.h
service/redis_node.h:
service/redis_conn.h:
service/cw.h:
