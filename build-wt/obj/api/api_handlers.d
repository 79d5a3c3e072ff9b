build-wt/obj/api/api_handlers.o: api/api_handlers.c api/api_b64.h \
 api/api_cursor.h service/store.h service/cw.h api/api_http.h \
 api/api_config.h api/api_auth.h service/cw.h api/api_cors.h \
 api/api_route.h service/engine.h service/decode.h service/event.h \
 service/detect.h service/netranges.h service/store.h sink/sink_run.h \
 sink/sink_config.h service/netranges.h api/api_log.h api/api_metrics.h \
 api/api_ui.h service/classify.h service/detect.h service/export.h \
 service/render.h
api/api_b64.h:
api/api_cursor.h:
service/store.h:
service/cw.h:
api/api_http.h:
api/api_config.h:
api/api_auth.h:
service/cw.h:
api/api_cors.h:
api/api_route.h:
service/engine.h:
service/decode.h:
service/event.h:
service/detect.h:
service/netranges.h:
service/store.h:
sink/sink_run.h:
sink/sink_config.h:
service/netranges.h:
api/api_log.h:
api/api_metrics.h:
api/api_ui.h:
service/classify.h:
service/detect.h:
service/export.h:
service/render.h:
