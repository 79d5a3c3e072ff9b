build-wt/tests/test_store: tests/test_store.c service/engine.h \
 service/cw.h service/decode.h service/event.h service/detect.h \
 service/netranges.h service/store.h service/store.h
service/engine.h:
service/cw.h:
service/decode.h:
service/event.h:
service/detect.h:
service/netranges.h:
service/store.h:
service/store.h:
