build-wt/obj/service/store_mem.o: service/store_mem.c service/store.h \
 service/cw.h service/detect.h service/event.h service/netranges.h
service/store.h:
service/cw.h:
service/detect.h:
service/event.h:
service/netranges.h:
