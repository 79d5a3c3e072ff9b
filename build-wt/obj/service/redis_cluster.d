build-wt/obj/service/redis_cluster.o: service/redis_cluster.c \
 service/redis_cluster.h service/redis_node.h service/redis_conn.h \
 service/cw.h
service/redis_cluster.h:
service/redis_node.h:
service/redis_conn.h:
service/cw.h:
