build-wt/tests/test_decode: tests/test_decode.c service/classify.h \
 service/event.h service/decode.h service/cw.h
service/classify.h:
service/event.h:
service/decode.h:
service/cw.h:
