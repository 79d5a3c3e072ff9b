build-wt/obj/service/cw.o: service/cw.c service/cw.h
service/cw.h:
