build-wt/obj/api/api_route.o: api/api_route.c api/api_route.h \
 api/api_auth.h service/cw.h api/api.h
api/api_route.h:
api/api_auth.h:
service/cw.h:
api/api.h:
