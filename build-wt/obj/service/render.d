build-wt/obj/service/render.o: service/render.c service/render.h \
 service/detect.h service/event.h service/netranges.h service/cw.h \
 service/store.h
service/render.h:
service/detect.h:
service/event.h:
service/netranges.h:
service/cw.h:
service/store.h:
