build-wt/obj/sink/sink_payload.o: sink/sink_payload.c sink/sink_payload.h \
 sink/sink_config.h service/cw.h service/detect.h service/event.h \
 service/netranges.h service/cw.h service/render.h service/detect.h \
 service/store.h
sink/sink_payload.h:
sink/sink_config.h:
service/cw.h:
service/detect.h:
service/event.h:
service/netranges.h:
service/cw.h:
service/render.h:
service/detect.h:
service/store.h:
