build-wt/tests/test_cw: tests/test_cw.c service/cw.h
service/cw.h:
