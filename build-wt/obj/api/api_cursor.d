build-wt/obj/api/api_cursor.o: api/api_cursor.c api/api_cursor.h \
 service/store.h service/cw.h api/api_b64.h
api/api_cursor.h:
service/store.h:
service/cw.h:
api/api_b64.h:
