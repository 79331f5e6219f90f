PREFIX ?= /usr/local

.PHONY: build install test demo bench clean
build:
	swift build
install:
	PREFIX=$(PREFIX) scripts/install.sh
test:
	scripts/test.sh
demo:
	scripts/demo.sh
bench:
	bench/start-latency.sh
clean:
	rm -rf .build
