build-wt/obj/sink/sink_config.o: sink/sink_config.c sink/sink_config.h \
 service/cw.h
sink/sink_config.h:
service/cw.h:
