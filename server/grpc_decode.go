package server

import (
	"errors"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Check reads four things of a CheckRequest: the authorization and
// X-Jwtgate-Project headers, the path and the "project" context extension.
// Envoy sends much more (every header, source and destination addresses,
// TLS session, metadata), and decoding all of it with the generic protobuf
// decoder was most of a Check's cost. decodeCheckRequest walks the wire
// format with protowire instead and keeps only those fields; everything
// else is checked for well-formedness and skipped.
//
// Field numbers, from envoy/service/auth/v3 (attribute_context.proto,
// external_auth.proto) and envoy/config/core/v3 (base.proto).
const (
	fCheckRequestAttributes   = 1  // CheckRequest.attributes
	fAttrRequest              = 4  // AttributeContext.request
	fAttrContextExtensions    = 10 // AttributeContext.context_extensions (map)
	fRequestHTTP              = 2  // AttributeContext.Request.http
	fHTTPHeaders              = 3  // HttpRequest.headers (map)
	fHTTPPath                 = 4  // HttpRequest.path
	fHTTPHeaderMap            = 13 // HttpRequest.header_map
	fHeaderMapHeaders         = 1  // HeaderMap.headers
	fHeaderValueKey           = 1  // HeaderValue.key
	fHeaderValueValue         = 2  // HeaderValue.value
	fHeaderValueRawValue      = 3  // HeaderValue.raw_value
	fMapKey, fMapValue        = 1, 2
	headerRequiredProjectWire = "x-jwtgate-project"
)

var errBadCheckRequest = errors.New("malformed CheckRequest")

// decodeCheckRequest fills req with the fields Check reads.
func decodeCheckRequest(b []byte, req *authv3.CheckRequest) error {
	attrs := &authv3.AttributeContext{}
	hreq := &authv3.AttributeContext_HttpRequest{}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != fCheckRequestAttributes || typ != protowire.BytesType {
			return nil
		}
		return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			if typ != protowire.BytesType {
				return nil
			}
			switch num {
			case fAttrContextExtensions:
				k, val, err := mapEntry(v)
				if err != nil {
					return err
				}
				if k == ContextExtensionProject {
					if attrs.ContextExtensions == nil {
						attrs.ContextExtensions = map[string]string{}
					}
					attrs.ContextExtensions[k] = val
				}
			case fAttrRequest:
				return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
					if num != fRequestHTTP || typ != protowire.BytesType {
						return nil
					}
					return decodeHTTPRequest(v, hreq)
				})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	attrs.Request = &authv3.AttributeContext_Request{Http: hreq}
	req.Attributes = attrs
	return nil
}

func decodeHTTPRequest(b []byte, h *authv3.AttributeContext_HttpRequest) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fHTTPPath:
			h.Path = string(v)
		case fHTTPHeaders:
			k, val, err := mapEntry(v)
			if err != nil {
				return err
			}
			if k == "authorization" || k == headerRequiredProjectWire {
				if h.Headers == nil {
					h.Headers = make(map[string]string, 2)
				}
				h.Headers[k] = val
			}
		case fHTTPHeaderMap:
			if h.HeaderMap == nil {
				h.HeaderMap = &corev3.HeaderMap{}
			}
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num != fHeaderMapHeaders || typ != protowire.BytesType {
					return nil
				}
				hv := &corev3.HeaderValue{}
				err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
					if typ != protowire.BytesType {
						return nil
					}
					switch num {
					case fHeaderValueKey:
						hv.Key = string(v)
					case fHeaderValueValue:
						hv.Value = string(v)
					case fHeaderValueRawValue:
						hv.RawValue = append([]byte{}, v...)
					}
					return nil
				})
				if err != nil {
					return err
				}
				// Every header counts (Check refuses a repeated
				// Authorization), but only the two it reads keep values.
				if k := strings.ToLower(hv.Key); k != "authorization" && k != headerRequiredProjectWire {
					hv.Value, hv.RawValue = "", nil
				}
				h.HeaderMap.Headers = append(h.HeaderMap.Headers, hv)
				return nil
			})
		}
		return nil
	})
}

// mapEntry decodes a map<string,string> entry.
func mapEntry(b []byte) (k, v string, err error) {
	err = eachField(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fMapKey:
			k = string(val)
		case fMapValue:
			v = string(val)
		}
		return nil
	})
	return k, v, err
}

// eachField calls fn for each field of the message b, with the value's
// bytes for length-delimited fields; other wire types are validated and
// skipped (fn gets nil).
func eachField(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num <= 0 {
			return errBadCheckRequest
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errBadCheckRequest
		}
		b = b[n:]
		if err := fn(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}

// Unmarshal decodes a CheckRequest with decodeCheckRequest, anything else
// (health requests) with the proto codec.
func (c *checkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if req, ok := v.(*authv3.CheckRequest); ok {
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		defer buf.Free()
		return decodeCheckRequest(buf.ReadOnlyData(), req)
	}
	return c.CodecV2.Unmarshal(data, v)
}
