build-wt/obj/service/detect.o: service/detect.c service/detect.h \
 service/event.h service/netranges.h service/cw.h
service/detect.h:
service/event.h:
service/netranges.h:
service/cw.h:
