build-wt/obj/sink/sink_http.o: sink/sink_http.c sink/sink_http.h \
 sink/sink_config.h service/cw.h sink/sink_retry.h
sink/sink_http.h:
sink/sink_config.h:
service/cw.h:
sink/sink_retry.h:
