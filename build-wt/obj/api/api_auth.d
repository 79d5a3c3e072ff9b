build-wt/obj/api/api_auth.o: api/api_auth.c api/api_auth.h service/cw.h \
 api/api_b64.h
api/api_auth.h:
service/cw.h:
api/api_b64.h:
