build-wt/obj/cmd/credwatch.o: cmd/credwatch.c api/api.h service/cw.h \
 service/scan.h
api/api.h:
service/cw.h:
service/scan.h:
