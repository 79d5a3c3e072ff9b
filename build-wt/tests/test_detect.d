build-wt/tests/test_detect: tests/test_detect.c service/detect.h \
 service/event.h service/netranges.h service/cw.h
service/detect.h:
service/event.h:
service/netranges.h:
service/cw.h:
