build-wt/obj/api/api_config.o: api/api_config.c api/api_config.h \
 api/api_auth.h service/cw.h api/api_cors.h api/api_route.h \
 service/settings.h service/detect.h service/event.h service/netranges.h \
 service/cw.h service/store.h
api/api_config.h:
api/api_auth.h:
service/cw.h:
api/api_cors.h:
api/api_route.h:
service/settings.h:
service/detect.h:
service/event.h:
service/netranges.h:
service/cw.h:
service/store.h:
