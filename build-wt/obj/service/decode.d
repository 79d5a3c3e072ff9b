build-wt/obj/service/decode.o: service/decode.c service/decode.h \
 service/cw.h service/event.h service/classify.h
service/decode.h:
service/cw.h:
service/event.h:
service/classify.h:
