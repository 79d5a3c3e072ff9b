build-wt/obj/api/api_content.o: api/api_content.c api/api_content.h
api/api_content.h:
