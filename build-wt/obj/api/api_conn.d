build-wt/obj/api/api_conn.o: api/api_conn.c api/api_conn.h service/cw.h
api/api_conn.h:
service/cw.h:
