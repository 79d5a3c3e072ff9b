build-wt/obj/service/netranges.o: service/netranges.c service/netranges.h \
 service/cw.h
service/netranges.h:
service/cw.h:
