build-wt/tests/test_engine: tests/test_engine.c service/engine.h \
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
