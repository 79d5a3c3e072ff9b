build-wt/obj/sink/sink_run.o: sink/sink_run.c sink/sink_run.h \
 sink/sink_config.h service/store.h service/cw.h service/cw.h \
 service/export.h service/render.h service/detect.h service/event.h \
 service/netranges.h service/store.h sink/sink.h sink/sink_http.h \
 sink/sink_payload.h sink/sink_retry.h
sink/sink_run.h:
sink/sink_config.h:
service/store.h:
service/cw.h:
service/cw.h:
service/export.h:
service/render.h:
service/detect.h:
service/event.h:
service/netranges.h:
service/store.h:
sink/sink.h:
sink/sink_http.h:
sink/sink_payload.h:
sink/sink_retry.h:
