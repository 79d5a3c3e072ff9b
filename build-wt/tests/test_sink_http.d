build-wt/tests/test_sink_http: tests/test_sink_http.c service/cw.h \
 sink/sink.h sink/sink_config.h sink/sink_http.h sink/sink_payload.h \
 sink/sink_retry.h
service/cw.h:
sink/sink.h:
sink/sink_config.h:
sink/sink_http.h:
sink/sink_payload.h:
sink/sink_retry.h:
