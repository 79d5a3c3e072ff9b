build-wt/obj/api/api_metrics.o: api/api_metrics.c api/api_metrics.h \
 api/api_route.h api/api_auth.h service/cw.h api/api_conn.h \
 sink/sink_run.h sink/sink_config.h service/store.h service/cw.h
api/api_metrics.h:
api/api_route.h:
api/api_auth.h:
service/cw.h:
api/api_conn.h:
sink/sink_run.h:
sink/sink_config.h:
service/store.h:
service/cw.h:
