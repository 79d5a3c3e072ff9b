build-wt/obj/service/detect_codec.o: service/detect_codec.c \
 service/detect.h service/event.h service/netranges.h service/cw.h
service/detect.h:
service/event.h:
service/netranges.h:
service/cw.h:
