build-wt/obj/sink/sink_retry.o: sink/sink_retry.c sink/sink_retry.h \
 sink/sink_http.h sink/sink_config.h service/cw.h
sink/sink_retry.h:
sink/sink_http.h:
sink/sink_config.h:
service/cw.h:
