build-wt/obj/api/api_ui.o: api/api_ui.c api/api_ui.h
api/api_ui.h:
