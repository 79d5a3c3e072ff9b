build-wt/obj/sink/sink.o: sink/sink.c sink/sink.h sink/sink_config.h \
 sink/sink_http.h sink/sink_payload.h sink/sink_retry.h service/cw.h \
 sink/sink_sign.h
sink/sink.h:
sink/sink_config.h:
sink/sink_http.h:
sink/sink_payload.h:
sink/sink_retry.h:
service/cw.h:
sink/sink_sign.h:
