build-wt/obj/api/api_log.o: api/api_log.c api/api_log.h service/cw.h
api/api_log.h:
service/cw.h:
