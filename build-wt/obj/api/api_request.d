build-wt/obj/api/api_request.o: api/api_request.c api/api_request.h \
 api/api_conn.h api/api_content.h api/api_cors.h api/api_route.h \
 api/api_auth.h service/cw.h api/api_http.h api/api_config.h \
 service/engine.h service/cw.h service/decode.h service/event.h \
 service/detect.h service/netranges.h service/store.h sink/sink_run.h \
 sink/sink_config.h service/store.h service/netranges.h api/api_metrics.h
api/api_request.h:
api/api_conn.h:
api/api_content.h:
api/api_cors.h:
api/api_route.h:
api/api_auth.h:
service/cw.h:
api/api_http.h:
api/api_config.h:
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
api/api_metrics.h:
