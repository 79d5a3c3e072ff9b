build-wt/obj/service/engine.o: service/engine.c service/engine.h \
 service/cw.h service/decode.h service/event.h service/detect.h \
 service/netranges.h service/store.h service/render.h
service/engine.h:
service/cw.h:
service/decode.h:
service/event.h:
service/detect.h:
service/netranges.h:
service/store.h:
service/render.h:
