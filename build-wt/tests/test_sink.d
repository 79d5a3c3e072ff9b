build-wt/tests/test_sink: tests/test_sink.c service/cw.h sink/sink.h \
 sink/sink_config.h sink/sink_http.h sink/sink_payload.h \
 sink/sink_retry.h sink/sink_sign.h
service/cw.h:
sink/sink.h:
sink/sink_config.h:
sink/sink_http.h:
sink/sink_payload.h:
sink/sink_retry.h:
sink/sink_sign.h:
