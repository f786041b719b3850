package scan

import (
	"math/big"
	"sync"
)

// A common prime is a published DH group many servers share, so that one
// precomputation breaks them all (Logjam, weakdh.org). The RFC groups are
// defined by formulas over pi (RFC 2409, RFC 3526) and e (RFC 7919); they
// are computed from those here rather than copied as hex, and the tests
// check them against OpenSSL's built-in groups and for primality.

// publishedGroup is one RFC group: p = 2^bits - 2^(bits-64) - 1 +
// 2^64 * (floor(2^(bits-130) * c) + k), with c = pi or e.
type publishedGroup struct {
	name string
	bits int
	e    bool // the constant is e (RFC 7919), else pi
	k    int64
}

var publishedGroups = []publishedGroup{
	{"RFC 2409 group 1", 768, false, 149686},
	{"RFC 2409 group 2", 1024, false, 129093},
	{"RFC 3526 group 5", 1536, false, 741804},
	{"RFC 3526 group 14", 2048, false, 124476},
	{"RFC 3526 group 15", 3072, false, 1690314},
	{"RFC 3526 group 16", 4096, false, 240904},
	{"RFC 3526 group 17", 6144, false, 929484},
	{"RFC 3526 group 18", 8192, false, 4743158},
	{"RFC 7919 ffdhe2048", 2048, true, 560316},
	{"RFC 7919 ffdhe3072", 3072, true, 2625351},
	{"RFC 7919 ffdhe4096", 4096, true, 5736041},
	{"RFC 7919 ffdhe6144", 6144, true, 15705020},
	{"RFC 7919 ffdhe8192", 8192, true, 10965728},
}

var (
	commonPrimesOnce sync.Once
	commonPrimes     map[string]string // big-endian p -> group name
)

// commonPrime names the published group whose prime is p (big-endian,
// leading zeros allowed), or "" when p is none of them.
func commonPrime(p []byte) string {
	commonPrimesOnce.Do(func() {
		commonPrimes = map[string]string{}
		const maxBits = 8192 - 130
		pi, e := fixedPi(maxBits), fixedE(maxBits)
		for _, g := range publishedGroups {
			commonPrimes[string(g.prime(pi, e, maxBits).Bytes())] = g.name
		}
	})
	return commonPrimes[string(new(big.Int).SetBytes(p).Bytes())]
}

// prime evaluates the group's formula; pi and e are floor(2^scale * c).
func (g publishedGroup) prime(pi, e *big.Int, scale int) *big.Int {
	c := pi
	if g.e {
		c = e
	}
	// floor(2^(bits-130) * c) = floor(2^scale * c) >> (scale - (bits-130)).
	t := new(big.Int).Rsh(c, uint(scale-(g.bits-130)))
	t.Add(t, big.NewInt(g.k))
	t.Lsh(t, 64)
	p := new(big.Int).Lsh(big.NewInt(1), uint(g.bits))
	p.Sub(p, new(big.Int).Lsh(big.NewInt(1), uint(g.bits-64)))
	p.Sub(p, big.NewInt(1))
	return p.Add(p, t)
}

// guardBits are extra bits carried through the series so that the
// truncation errors of the terms stay far below the bits kept.
const guardBits = 64

// fixedPi returns floor(2^scale * pi), by Machin's formula
// pi = 16 atan(1/5) - 4 atan(1/239).
func fixedPi(scale int) *big.Int {
	one := new(big.Int).Lsh(big.NewInt(1), uint(scale+guardBits))
	pi := new(big.Int).Mul(big.NewInt(16), atanInv(5, one))
	pi.Sub(pi, new(big.Int).Mul(big.NewInt(4), atanInv(239, one)))
	return pi.Rsh(pi, guardBits)
}

// atanInv returns atan(1/x) in the fixed point whose 1 is one.
func atanInv(x int64, one *big.Int) *big.Int {
	sum := new(big.Int)
	x2 := big.NewInt(x * x)
	pow := new(big.Int).Quo(one, big.NewInt(x)) // one / x^(2n+1)
	term := new(big.Int)
	for n := int64(0); pow.Sign() > 0; n++ {
		term.Quo(pow, big.NewInt(2*n+1))
		if n%2 == 0 {
			sum.Add(sum, term)
		} else {
			sum.Sub(sum, term)
		}
		pow.Quo(pow, x2)
	}
	return sum
}

// fixedE returns floor(2^scale * e), by e = sum 1/n!.
func fixedE(scale int) *big.Int {
	term := new(big.Int).Lsh(big.NewInt(1), uint(scale+guardBits)) // one / n!
	sum := new(big.Int)
	for n := int64(1); term.Sign() > 0; n++ {
		sum.Add(sum, term)
		term.Quo(term, big.NewInt(n))
	}
	return sum.Rsh(sum, guardBits)
}
