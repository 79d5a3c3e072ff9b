build-wt/obj/service/export.o: service/export.c service/export.h \
 service/cw.h service/detect.h service/event.h service/netranges.h \
 service/store.h
service/export.h:
service/cw.h:
service/detect.h:
service/event.h:
service/netranges.h:
service/store.h:
