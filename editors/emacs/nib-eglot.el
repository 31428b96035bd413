;;; nib-eglot.el --- Code completion and review from nib, through eglot -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The nib developers

;; Author: The nib developers
;; Maintainer: The nib developers
;; Version: 0.1.0
;; Package-Requires: ((emacs "29.1"))
;; Keywords: tools, languages, convenience
;; URL: https://github.com/nib-dev/nib
;; SPDX-License-Identifier: MIT OR Apache-2.0

;; This file is not part of GNU Emacs.

;;; Commentary:

;; nib is a local code assistant: a Transformer running in ONNX Runtime
;; behind a language server (`nib serve').  This package connects it to
;; eglot (built into Emacs 29 and later).  eglot has no inline completion
;; (ghost text): nib's suggestions come through `completion-at-point', its
;; review findings through Flymake, with quick fixes in
;; `eglot-code-actions'.  nib reviews a file when it is opened and saved,
;; and on `nib-eglot-review-file'.
;;
;; Loading this file changes nothing: eglot runs one server per buffer, so
;; choosing nib for a language takes that language away from your own
;; server (pyright, rust-analyzer...).  Choose explicitly:
;;
;;   M-x nib-eglot            nib for the current buffer only, this once
;;   (nib-eglot-register '(python-mode python-ts-mode))
;;                            nib for those modes from now on
;;
;; To keep your own server and have nib's ghost text and findings beside
;; it, use lsp-mode instead (nib-lsp.el), which runs several servers in one
;; buffer.

;;; Code:

(require 'eglot)

(defgroup nib-eglot nil
  "Code completion and review from nib, through eglot."
  :group 'eglot
  :prefix "nib-eglot-")

(defcustom nib-eglot-program "nib"
  "The nib binary: a name on `exec-path' or an absolute path."
  :type 'string)

(defcustom nib-eglot-model nil
  "Model folder; nil lets nib choose ($NIB_MODEL, then its own model)."
  :type '(choice (const nil) directory))

(defcustom nib-eglot-device "auto"
  "Execution provider: auto, cpu, cuda or cuda:N."
  :type 'string)

(defcustom nib-eglot-review t
  "Whether nib reviews files (on open, on save and on request).
Findings show through Flymake, with quick fixes in `eglot-code-actions'."
  :type 'boolean)

(defcustom nib-eglot-review-min-confidence nil
  "Hide review findings the model is less sure of than this (0 to 1).
nil keeps each rule's calibrated threshold (or the project's nib.toml)."
  :type '(choice (const :tag "nib's default" nil) number))

(defun nib-eglot-contact (&optional _interactive)
  "The command line and initializationOptions of nib's server.
A contact for `eglot-server-programs'."
  `(,nib-eglot-program "serve" "--stdio"
    :initializationOptions
    (:nib (:model ,(and nib-eglot-model (expand-file-name nib-eglot-model))
           :device ,nib-eglot-device
           :review (:enable ,(if nib-eglot-review t :json-false)
                    ,@(and nib-eglot-review-min-confidence
                           (list :minConfidence nib-eglot-review-min-confidence)))))))

;;;###autoload
(defun nib-eglot-register (modes)
  "Make eglot start nib in the major MODES (a list of symbols).
This replaces any other server eglot would start in those modes."
  (interactive (list (list major-mode)))
  (add-to-list 'eglot-server-programs (cons modes #'nib-eglot-contact)))

;;;###autoload
(defun nib-eglot ()
  "Start nib for the current buffer through eglot, leaving eglot's setup alone."
  (interactive)
  (let ((eglot-server-programs (list (cons major-mode #'nib-eglot-contact))))
    (call-interactively #'eglot)))

(defun nib-eglot--server ()
  "The eglot server of this buffer, or a user error."
  (or (eglot-current-server) (user-error "nib: no eglot server in this buffer")))

(defun nib-eglot-review-file ()
  "Ask nib to review the current file; findings arrive as diagnostics."
  (interactive)
  ;; Answered once the review ended; the findings arrive as diagnostics.
  (let ((result (jsonrpc-request (nib-eglot--server) :workspace/executeCommand
                                 `(:command "nib.reviewFile"
                                   :arguments [,(eglot-path-to-uri (buffer-file-name))]))))
    (when (equal (plist-get result :state) "published")
      (let ((n (plist-get result :findings)))
        (message "nib: review found %d issue%s" n (if (eql n 1) "" "s"))))
    result))

(defun nib-eglot-status ()
  "Show nib's status (the `nib/status' request)."
  (interactive)
  (let ((s (jsonrpc-request (nib-eglot--server) :nib/status nil)))
    (message "nib: %s%s%s" (plist-get s :state)
             (if (plist-get s :model) (format ", model %s" (plist-get s :model)) "")
             (if (plist-get s :device) (format ", on %s" (plist-get s :device)) ""))))

(provide 'nib-eglot)
;;; nib-eglot.el ends here
