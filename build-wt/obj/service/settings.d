build-wt/obj/service/settings.o: service/settings.c service/settings.h \
 service/detect.h service/event.h service/netranges.h service/cw.h \
 service/store.h
service/settings.h:
service/detect.h:
service/event.h:
service/netranges.h:
service/cw.h:
service/store.h:
