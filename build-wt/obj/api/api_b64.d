build-wt/obj/api/api_b64.o: api/api_b64.c api/api_b64.h
api/api_b64.h:
