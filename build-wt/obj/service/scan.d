build-wt/obj/service/scan.o: service/scan.c service/scan.h service/cw.h \
 service/engine.h service/decode.h service/event.h service/detect.h \
 service/netranges.h service/store.h service/export.h service/render.h \
 service/settings.h
service/scan.h:
service/cw.h:
service/engine.h:
service/decode.h:
service/event.h:
service/detect.h:
service/netranges.h:
service/store.h:
service/export.h:
service/render.h:
service/settings.h:
