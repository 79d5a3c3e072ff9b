build-wt/obj/service/classify.o: service/classify.c service/classify.h \
 service/event.h service/cw.h
service/classify.h:
service/event.h:
service/cw.h:
