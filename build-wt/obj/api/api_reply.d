build-wt/obj/api/api_reply.o: api/api_reply.c api/api_http.h \
 api/api_config.h api/api_auth.h service/cw.h api/api_cors.h \
 api/api_route.h service/engine.h service/cw.h service/decode.h \
 service/event.h service/detect.h service/netranges.h service/store.h \
 sink/sink_run.h sink/sink_config.h service/store.h service/netranges.h \
 api/api_log.h api/api_ui.h
api/api_http.h:
api/api_config.h:
api/api_auth.h:
service/cw.h:
api/api_cors.h:
api/api_route.h:
service/engine.h:
service/cw.h:
service/decode.h:
service/event.h:
service/detect.h:
service/netranges.h:
service/store.h:
sink/sink_run.h:
sink/sink_config.h:
service/store.h:
service/netranges.h:
api/api_log.h:
api/api_ui.h:
