package record

// DecodeBoth decodes payload, a verified and unmasked payload of h's
// length, with decodeOne and with the general decoder, for tests that
// check that the two agree.
func DecodeBoth(h Header, payload []byte) (fast Frame, fastOK bool, general Frame, err error) {
	fastOK = fast.decodeOne(h, payload)
	err = general.decodeFields(h, payload)
	return fast, fastOK, general, err
}

// ValidUTF8Within is validUTF8Within, for tests.
var ValidUTF8Within = validUTF8Within

// NewHeader returns the header of the given fields; see the methods of
// the same names for weyl, syncDelta and compact.
func NewHeader(length, payloadCRC uint32, position uint64, syncDelta uint32, weyl, compact bool) Header {
	h := Header{Length: length, PayloadCRC: payloadCRC, Position: position, bits: uint64(syncDelta)}
	if weyl {
		h.bits |= headerWeyl
	}
	if compact {
		h.bits |= headerCompact
	}
	return h
}

// SumUnmaskWeyl and SumHeader are sumUnmaskWeyl and sumHeader, for tests.
var (
	SumUnmaskWeyl = sumUnmaskWeyl
	SumHeader     = sumHeader
)
