build-wt/obj/service/store.o: service/store.c service/store.h \
 service/cw.h
service/store.h:
service/cw.h:
