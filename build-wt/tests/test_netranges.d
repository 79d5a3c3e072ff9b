build-wt/tests/test_netranges: tests/test_netranges.c service/netranges.h \
 service/cw.h
service/netranges.h:
service/cw.h:
