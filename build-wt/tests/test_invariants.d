build-wt/tests/test_invariants: tests/test_invariants.c service/engine.h \
 service/cw.h service/decode.h service/event.h service/detect.h \
 service/netranges.h service/store.h service/render.h service/settings.h \
 service/store.h
service/engine.h:
service/cw.h:
service/decode.h:
service/event.h:
service/detect.h:
service/netranges.h:
service/store.h:
service/render.h:
service/settings.h:
service/store.h:
