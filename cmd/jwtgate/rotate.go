package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// keyInfo is what rotate reads of a key object.
type keyInfo struct {
	KID        string  `json:"kid"`
	Status     string  `json:"status"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
}

func (k keyInfo) lastUsed() string {
	if k.LastUsedAt == nil {
		return "never used"
	}
	return "last verified a token at " + *k.LastUsedAt
}

func (c *keysClient) activeKeys(project string) ([]keyInfo, error) {
	raw, err := c.send(http.MethodGet, "/v1/projects/"+url.PathEscape(project)+"/keys", nil)
	if err != nil {
		return nil, err
	}
	var l struct{ Keys []keyInfo }
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, errors.New("the key list is not the expected JSON: " + err.Error())
	}
	var out []keyInfo // oldest first, as the API lists them
	for _, k := range l.Keys {
		if k.Status == "active" {
			out = append(out, k)
		}
	}
	return out, nil
}

// rotateStart registers the new key and prints the plan.
// body is the POST body of the new key (checked to hold no private key).
func (c *keysClient) rotateStart(stdout, stderr io.Writer, project string, body map[string]any) int {
	raw, err := c.send(http.MethodPost, "/v1/projects/"+url.PathEscape(project)+"/keys", body)
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate keys rotate: registering the new key:", err)
		return exitError
	}
	var nk keyInfo
	if err := json.Unmarshal(raw, &nk); err != nil {
		fmt.Fprintln(stderr, "jwtgate keys rotate: the answer is not a key object:", err)
		return exitError
	}
	active, err := c.activeKeys(project)
	if err != nil {
		fmt.Fprintf(stderr, "jwtgate keys rotate: registered %s, but listing the keys failed: %v\n", nk.KID, err)
		return exitError
	}
	fmt.Fprintf(stdout, "Registered the new key %s in project %s.\n\nRotation plan:\n", nk.KID, project)
	fmt.Fprintf(stdout, "  1. Sign new tokens with kid %s (its private key).\n", nk.KID)
	var old []keyInfo
	for _, k := range active {
		if k.KID != nk.KID {
			old = append(old, k)
		}
	}
	if len(old) == 0 {
		fmt.Fprintln(stdout, "  2. No older active key: nothing to retire.")
		return exitOK
	}
	fmt.Fprintln(stdout, "  2. Keep the older key(s) active until the tokens signed with them have expired:")
	for _, k := range old {
		fmt.Fprintf(stdout, "       %s  %s\n", k.KID, k.lastUsed())
	}
	fmt.Fprintf(stdout, "  3. Then run:  jwtgate keys rotate --project %s --finish\n", project)
	fmt.Fprintln(stdout, "     It deactivates every active key older than the newest once none has verified a")
	fmt.Fprintln(stdout, "     token for max TTL + leeway (the server's guardrail), or says how long to wait.")
	fmt.Fprintln(stdout, "     Deactivation can be undone (keys update --status active); delete the old key later.")
	return exitOK
}

// rotateFinish deactivates every active key older than the newest active
// one, once the guardrail allows it.
func (c *keysClient) rotateFinish(stdout, stderr io.Writer, project string, force bool) int {
	active, err := c.activeKeys(project)
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate keys rotate --finish:", err)
		return exitError
	}
	if len(active) < 2 {
		fmt.Fprintf(stderr, "jwtgate keys rotate --finish: project %s has %d active key(s); there is nothing to retire. Start a rotation with: jwtgate keys rotate --project %s --public-key NEW.pub\n", project, len(active), project)
		return exitError
	}
	newest := active[len(active)-1]
	if newest.LastUsedAt == nil && !force {
		fmt.Fprintf(stderr, "jwtgate keys rotate --finish: the new key %s has not verified any token yet, so traffic has not moved to it; finish once it has (or --force)\n", newest.KID)
		return exitError
	}
	q := ""
	if force {
		q = "?force=true"
	}
	code := exitOK
	for _, k := range active[:len(active)-1] {
		_, err := c.send(http.MethodPatch, "/v1/projects/"+url.PathEscape(project)+"/keys/"+url.PathEscape(k.KID)+q, map[string]string{"status": "inactive"})
		var ae *apiError
		switch {
		case err == nil:
			fmt.Fprintf(stdout, "deactivated %s (%s); the new key %s stays active\n", k.KID, k.lastUsed(), newest.KID)
		case errors.As(err, &ae) && ae.Code == "key_in_use":
			wait := "later"
			if t, perr := time.Parse(time.RFC3339, ae.SafeAfter); perr == nil {
				wait = "in " + time.Until(t).Round(time.Second).String()
			}
			fmt.Fprintf(stderr, "not yet: %s verified a token at %s; it is safe to deactivate after %s (%s). Run this command again then.\n",
				k.KID, ae.LastUsedAt, ae.SafeAfter, wait)
			code = exitError
		default:
			fmt.Fprintf(stderr, "jwtgate keys rotate --finish: deactivating %s: %v\n", k.KID, err)
			code = exitError
		}
	}
	return code
}
