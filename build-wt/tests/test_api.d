build-wt/tests/test_api: tests/test_api.c api/api_auth.h service/cw.h \
 api/api_b64.h api/api_config.h api/api_auth.h api/api_cors.h \
 api/api_route.h api/api_content.h api/api_cors.h api/api_cursor.h \
 service/store.h service/cw.h api/api_metrics.h api/api_route.h \
 api/api_ui.h sink/sink_http.h sink/sink_config.h sink/sink_run.h
api/api_auth.h:
service/cw.h:
api/api_b64.h:
api/api_config.h:
api/api_auth.h:
api/api_cors.h:
api/api_route.h:
api/api_content.h:
api/api_cors.h:
api/api_cursor.h:
service/store.h:
service/cw.h:
api/api_metrics.h:
api/api_route.h:
api/api_ui.h:
sink/sink_http.h:
sink/sink_config.h:
sink/sink_run.h:
