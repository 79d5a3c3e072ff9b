build-wt/obj/service/redis_conn.o: service/redis_conn.c \
 service/redis_conn.h service/cw.h service/redis_cluster.h \
 service/redis_node.h
service/redis_conn.h:
service/cw.h:
service/redis_cluster.h:
service/redis_node.h:
