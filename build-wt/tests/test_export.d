build-wt/tests/test_export: tests/test_export.c service/cw.h \
 service/detect.h service/event.h service/netranges.h service/cw.h \
 service/export.h service/store.h
service/cw.h:
service/detect.h:
service/event.h:
service/netranges.h:
service/cw.h:
service/export.h:
service/store.h:
