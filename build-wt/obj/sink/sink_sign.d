build-wt/obj/sink/sink_sign.o: sink/sink_sign.c sink/sink_sign.h \
 service/cw.h
sink/sink_sign.h:
service/cw.h:
